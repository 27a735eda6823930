/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  Saved SPI plans for the statements that find a batch of rows through
 *	  their keys (see plans.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef EXECLOG_PLANS_H
#define EXECLOG_PLANS_H

#include "postgres.h"

#include "executor/spi.h"

extern SPIPlanPtr execlog_keyed_prepare(const char *sql, int nargs, Oid *argtypes);
extern void execlog_keyed_plan(SPIPlanPtr plan);

#endif							/* EXECLOG_PLANS_H */
