
/* ------------------------------------------------------------------------
 * Last: functions are executable by PUBLIC when created; take that back for
 * every function of the schema, whichever part of the script made it.
 * ------------------------------------------------------------------------ */
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA execlog FROM PUBLIC;
