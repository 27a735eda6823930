/* execlog--0.2.sql: full install script of execlog 0.2 */

\echo Use "CREATE EXTENSION execlog" to load this file. \quit
