-- execlog.flatten: process-context documents into relational rows (SPEC 8)
DROP EXTENSION IF EXISTS execlog CASCADE;
CREATE EXTENSION execlog;
\set VERBOSITY default
\set SHOW_CONTEXT never

-- a seed-like document: nested object, array of objects with a nested
-- array, array of scalars, empty array, null, array of arrays
SELECT table_name, row_key, parent_key, ordinal, record
  FROM execlog.flatten('{
    "context": {
      "processId": "42",
      "executionTemplateID": "7",
      "customer": {"name": "ACME", "vip": true, "address": {"city": "Köln"}},
      "celonis_postaction_feedback": {
        "approved": true,
        "quotes": [
          {"id": 1, "price": 9.5, "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]},
          {"id": 2, "price": null, "lines": []}
        ]
      },
      "tags": ["urgent", "eu", null],
      "attachments": [],
      "matrix": [[1, 2], [3]]
    },
    "metadata": {"createdAt": "2024-05-01T10:00:00.000000Z", "updatedAt": "2024-05-01T10:05:00.000000Z"},
    "status": "success",
    "history": [{"at": 1}, 5]
  }')
 ORDER BY table_name, row_key;

-- the table of the SPEC's example
SELECT DISTINCT table_name
  FROM execlog.flatten('{"context": {"processId": "1", "celonis_postaction_feedback": {"quotes": [{"id": 1}]}}}')
 ORDER BY 1;

-- defaults can be replaced: another root table and key column
SELECT * FROM execlog.flatten('{"order": {"no": 17}, "items": [{"sku": "x"}]}', 'orders', 'order$no');

-- a numeric or boolean key is spelled as text in row_key, kept as is in records
SELECT table_name, row_key, parent_key, record
  FROM execlog.flatten('{"id": 1.50, "a": [true]}', 'r', 'id');
SELECT row_key FROM execlog.flatten('{"id": false}', 'r', 'id');

-- empty objects add no column, nulls are kept, a NULL document gives no row
SELECT record FROM execlog.flatten('{"k": 1, "e": {}, "n": null, "o": {"e": {}}}', 'r', 'k');
SELECT count(*) FROM execlog.flatten(NULL);

-- keys with quotes, dots, "&", "$", spaces and non-ASCII letters are kept verbatim
SELECT table_name, row_key, record
  FROM execlog.flatten('{"id": "x", "we\"ird.k&y": {"a.b": [{"q\"": 1, "über": "ü"}]}, "": {"": 2}}', 'r', 'id')
 ORDER BY table_name;

-- bad input: never a crash, always a clear error
SELECT * FROM execlog.flatten('[1, 2]');
SELECT * FROM execlog.flatten('"text"');
SELECT * FROM execlog.flatten('17');
SELECT * FROM execlog.flatten('null');
-- keys colliding after joining
SELECT * FROM execlog.flatten('{"a$b": 1, "a": {"b": 2}, "context": {"processId": "1"}}');
SELECT * FROM execlog.flatten('{"context": {"processId": "1"}, "x": [{"context$processId": 5}]}');
-- two different arrays giving one table name
SELECT * FROM execlog.flatten('{"context": {"processId": "1"}, "a$b": [1], "a": {"b": [2]}}');
SELECT * FROM execlog.flatten('{"context": {"processId": "1"}, "a&b": {"c": [1]}, "a": {"b": {"c": [2]}}}');
-- the same array path in every element is one table, not a clash
SELECT table_name, count(*)
  FROM execlog.flatten('{"context": {"processId": "1"}, "q": [{"l": [1, 2]}, {"l": [3]}, {"l": []}]}')
 GROUP BY 1 ORDER BY 1;
-- missing or null key
SELECT * FROM execlog.flatten('{"context": {"processid": "1"}}');
SELECT * FROM execlog.flatten('{"context": {"processId": null}}');
SELECT * FROM execlog.flatten('{"context": {"processId": {"nested": 1}}}');
SELECT * FROM execlog.flatten('{"k": 1}', '', 'k');
SELECT * FROM execlog.flatten('{"k": 1}', 'r', '');
-- nesting: 100 levels are fine, 101 are refused (objects and arrays alike)
SELECT count(*) FROM execlog.flatten(('{"k": 1, "d": ' || repeat('{"a": ', 99) || '1' || repeat('}', 99) || '}')::jsonb, 'r', 'k');
SELECT count(*) FROM execlog.flatten(('{"k": 1, "d": ' || repeat('{"a": ', 100) || '1' || repeat('}', 100) || '}')::jsonb, 'r', 'k');
SELECT count(*), max(length(table_name)) FROM execlog.flatten(('{"k": 1, "d": ' || repeat('[', 99) || '1' || repeat(']', 99) || '}')::jsonb, 'r', 'k');
SELECT count(*) FROM execlog.flatten(('{"k": 1, "d": ' || repeat('[', 100) || '1' || repeat(']', 100) || '}')::jsonb, 'r', 'k');
SELECT count(*) FROM execlog.flatten(('{"k": 1, "d": ' || repeat('[', 5000) || '1' || repeat(']', 5000) || '}')::jsonb, 'r', 'k');
-- a huge document: 200,000 array elements, a 1 MB string
SELECT count(*), max(ordinal), count(DISTINCT row_key)
  FROM execlog.flatten(jsonb_build_object('k', 1, 'big', (SELECT jsonb_agg(jsonb_build_object('i', g)) FROM generate_series(1, 200000) g)), 'r', 'k');
SELECT length(record ->> 's') FROM execlog.flatten(jsonb_build_object('k', 1, 's', repeat('x', 1000000)), 'r', 'k');

-- the schema aggregate export_contexts uses: tables in order, column types
SELECT jsonb_pretty(execlog._flatten_schema(d, 'r', 'k'))
  FROM (VALUES ('{"k": 1, "n": 1, "b": true, "s": "x", "m": 1, "z": null, "a": [{"x": 1}]}'::jsonb),
			   ('{"k": 2, "n": 2.5, "b": false, "s": "y", "m": "one", "a": [{"x": "2", "y": [true]}]}'),
			   (NULL)) v (d);
SELECT execlog._flatten_schema(d, 'r', 'k') FROM (SELECT NULL::jsonb WHERE false) v (d);
SELECT execlog._flatten_schema(d, 'r', 'k')
  FROM (VALUES ('{"k": 1, "a$b": [1]}'::jsonb), ('{"k": 2, "a": {"b": [2]}}')) v (d);
