-- Every bad input is an ERROR (SQLSTATE class 22) naming the field, and
-- writes nothing.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

\i sql/include/helpers.sql

-- The valid event itself is accepted (dry), so each case below fails for its
-- own reason only.
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), dry => true);

-- Arguments.
SELECT pg_temp.try(0, pg_temp.bad('{source}', '"s"'));
SELECT pg_temp.try(-5, pg_temp.bad('{source}', '"s"'));
SELECT pg_temp.try(NULL, pg_temp.bad('{source}', '"s"'));
SELECT pg_temp.try(1, NULL);
SELECT pg_temp.try(1, '[]');
SELECT pg_temp.try(1, '{}');
SELECT pg_temp.try(1, '"event"');
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), NULL);
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{}', NULL);
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{1,NULL}');
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{3,2,3}');
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{0}');
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{-1}');
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"'), '{{1,2},{3,4}}');

-- Events.
SELECT pg_temp.try(1, '[1]');
SELECT pg_temp.try(1, '[["source", "s"]]');
SELECT pg_temp.try(1, pg_temp.bad('{colour}', '"red"'));
SELECT pg_temp.try(1, pg_temp.bad('{action}', NULL));
SELECT pg_temp.try(1, pg_temp.bad('{effect}', '{"reason": "r", "trigger": ["k", "1"]}'));
SELECT pg_temp.try(1, pg_temp.bad('{source}', NULL));
SELECT pg_temp.try(1, pg_temp.bad('{source}', '""'));
SELECT pg_temp.try(1, pg_temp.bad('{source}', '7'));
SELECT pg_temp.try(1, pg_temp.bad('{source}', 'null'));
SELECT pg_temp.try(1, pg_temp.bad('{timestamp}', '"yesterday-ish"'));
SELECT pg_temp.try(1, pg_temp.bad('{timestamp}', '"2026-13-40T10:00:00Z"'));
SELECT pg_temp.try(1, pg_temp.bad('{timestamp}', '"2026-11-22T10:00:00 Mars/Olympus"'));
SELECT pg_temp.try(1, pg_temp.bad('{timestamp}', '"infinity"'));
SELECT pg_temp.try(1, pg_temp.bad('{timestamp}', '1763805600'));

-- Actions.
SELECT pg_temp.try(1, pg_temp.bad('{action}', '"create"'));
SELECT pg_temp.try(1, pg_temp.bad('{action,colour}', '"red"'));
SELECT pg_temp.try(1, pg_temp.bad('{action,reason}', NULL));
SELECT pg_temp.try(1, pg_temp.bad('{action,reason}', '""'));
SELECT pg_temp.try(1, pg_temp.bad('{action,reason}', '["r"]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', NULL));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', '"alice"'));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', '["user"]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', '["user", "a", "b"]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,actor}', '{"user": "a"}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '[1, "a"]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '["", "a"]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '["book", ""]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '["book", null]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '["book", true]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,aggregate}', '["book", ["b"]]'));

-- Patches.
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', NULL));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '[]'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": {"k": 1}, "merge": {}}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": {}}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": []}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": "k"}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": [["k", 1], ["k"]]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": [["k", 1], "k"]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": [[[], 1]]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": [[["a", 2], 1]]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": [[3, 1]]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"dissoc": []}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"dissoc": "k"}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"dissoc": ["k", 1]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"dissoc": [["a", "b"], []]}'));
SELECT pg_temp.try(1, pg_temp.bad('{action,patch}', '{"assoc": {"k": 1}, "dissoc": []}'));

-- Triggers.
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', '{"key": "1"}'));
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', '[["key"]]'));
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', '[["key", "1"], ["key", "2"], ["key", "1"]]'));
SELECT pg_temp.try(1, pg_temp.bad('{triggers}', '[["key", 1], ["key", "1"]]'));
SELECT pg_temp.try(1, '[{"source": "s", "triggers": [], "effect": {"reason": "r", "trigger": ["k", "1"]}}]');

-- Effects.
SELECT pg_temp.try(1, '[{"source": "s", "effect": "expired"}]');
SELECT pg_temp.try(1, '[{"source": "s", "effect": {"trigger": ["k", "1"]}}]');
SELECT pg_temp.try(1, '[{"source": "s", "effect": {"reason": "r"}}]');
SELECT pg_temp.try(1, '[{"source": "s", "effect": {"reason": "r", "trigger": ["k"]}}]');
SELECT pg_temp.try(1, '[{"source": "s", "effect": {"reason": "r", "trigger": ["k", "1"], "when": 1}}]');

-- The index names the offending event; the valid ones before it are not written.
SELECT pg_temp.try(1, pg_temp.bad('{source}', '"s"') || pg_temp.bad('{source}', '"s"')
                      || pg_temp.bad('{action,aggregate}', '["book"]'));

-- Outside a handler the error carries its hint.
SELECT coherence_rebase(1, pg_temp.bad('{timestamp}', '"tomorrow at noon"'));

-- Nothing was written by any of the above.
SELECT coherence_seq_no(), (SELECT count(*) FROM coherence_actions) AS actions,
       (SELECT count(*) FROM coherence_triggers) AS triggers;

-- Bad stream arguments.
SELECT * FROM coherence_stream(NULL);
SELECT * FROM coherence_stream(-1);
SELECT * FROM coherence_stream(0, NULL, '{book,NULL}');
SELECT * FROM coherence_stream(0, NULL, '{{book},{receipt}}');
