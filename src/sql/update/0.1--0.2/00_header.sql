/*
 * execlog--0.1--0.2.sql: upgrade from execlog 0.1 to 0.2.
 *
 * Assembled from the files of src/sql/update/0.1--0.2 in name order.  Every
 * schema change of 0.2 is made here as well as in the full script
 * (the files of src/sql): t/060_upgrade.pl proves that 0.1 + this script gives
 * exactly the catalog of a fresh 0.2 install.
 */

\echo Use "ALTER EXTENSION execlog UPDATE TO '0.2'" to load this file. \quit
