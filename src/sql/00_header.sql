/* execlog--0.1.sql: full install script of execlog 0.1 */

\echo Use "CREATE EXTENSION execlog" to load this file. \quit
