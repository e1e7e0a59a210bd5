-- A store with every kind of row: actions with object and path patches,
-- dissocs, unicode, triggers, effects that replay, snapshots (a small
-- coherence.snapshot_interval) and two checkpoints. Deterministic (setseed,
-- fixed timestamps), so two runs build the same store. Needs superuser (the
-- GUC) and the extension in the search_path.
\set ON_ERROR_STOP 1
SET coherence.snapshot_interval = 3;
SET TimeZone = 'UTC';

-- The contract's seed walkthrough.
SELECT coherence_rebase(1, '[
  {"timestamp": "2026-11-22T10:00:00Z", "source": "bookstore", "action": {"reason": "create", "actor": ["user", "alice"],
   "aggregate": ["book", "Neuromancer"], "patch": {"assoc": {"author": "William Gibson", "genre": "SciFi"}}}},
  {"timestamp": "2026-11-22T10:00:01Z", "source": "bookstore", "action": {"reason": "create", "actor": ["user", "alice"],
   "aggregate": ["book", "Count Zero"], "patch": {"assoc": {"author": "William Gibson"}}}}]')->>'result' AS seed_1;
SELECT coherence_rebase(1, '[
  {"timestamp": "2026-11-22T10:01:00Z", "source": "bookstore", "action": {"reason": "create", "actor": ["user", "bob"],
   "aggregate": ["book", "Mona Lisa Overdrive"], "patch": {"assoc": {"author": "William Gibson"}}}},
  {"timestamp": "2026-11-22T10:01:01Z", "source": "bookstore", "action": {"reason": "update", "actor": ["user", "bob"],
   "aggregate": ["book", "Neuromancer"], "patch": {"assoc": [["genre", "Cyberpunk"]]}}}]', '{1}')->>'result' AS seed_3;
SELECT coherence_rebase(2, '[
  {"timestamp": "2026-11-22T10:02:00+01:00", "source": "till", "action": {"reason": "sell", "actor": ["user", "carol"],
   "aggregate": ["receipt", 1], "patch": {"assoc": {"total": 100}}}, "triggers": [["encryption-key", "1"]]},
  {"timestamp": "2026-11-22T10:02:01-05:30", "source": "till", "action": {"reason": "sell", "actor": ["user", "carol"],
   "aggregate": ["receipt", "2"], "patch": {"assoc": {"total": 250}}}, "triggers": [["encryption-key", "2"]]}]')->>'result' AS seed_5;
SELECT coherence_rebase(6, '[{"timestamp": "2026-11-22T10:03:00Z", "source": "keystore",
   "effect": {"reason": "key-expired", "trigger": ["encryption-key", "1"]}}]')->>'result' AS seed_7;

-- 400 more events on 12 aggregates: object and path assocs, dissocs,
-- unicode, numbers, triggers on every 7th action, an effect every 25th event.
SELECT setseed(0.42);
DO $$
DECLARE
	i int;
	answer jsonb;
	event jsonb;
	aggregate jsonb;
	patch jsonb;
BEGIN
	FOR i IN 8 .. 407 LOOP
		IF i % 25 = 0 THEN
			event := jsonb_build_object('source', 'keystore',
				'effect', jsonb_build_object('reason', 'key-expired',
					'trigger', jsonb_build_array('key', (i / 25) % 5)));
		ELSE
			aggregate := jsonb_build_array((ARRAY['book', 'receipt', 'shelf'])[1 + i % 3], 'a' || (i % 12));
			patch := CASE i % 4
				WHEN 0 THEN jsonb_build_object('assoc', jsonb_build_object('n', i, 'title', 'Ünïcödé ✓ ' || md5(random()::text)))
				WHEN 1 THEN jsonb_build_object('assoc', jsonb_build_array(
					jsonb_build_array(jsonb_build_array('meta', 'rating', 'k' || (i % 5)), round(random() * 100)),
					jsonb_build_array('price', random())))
				WHEN 2 THEN jsonb_build_object('dissoc', jsonb_build_array('title', jsonb_build_array('meta', 'rating', 'k' || (i % 3))))
				ELSE jsonb_build_object('assoc', jsonb_build_object('tags', jsonb_build_array('x', i, NULL, true)),
					'dissoc', jsonb_build_array('n'))
			END;
			event := jsonb_build_object('source', 'generator',
				'action', jsonb_build_object('reason', 'edit', 'actor', jsonb_build_array('user', 'u' || (i % 7)),
					'aggregate', aggregate, 'patch', patch));
			IF i % 7 = 0 THEN
				event := event || jsonb_build_object('triggers', jsonb_build_array(jsonb_build_array('key', i % 5),
					jsonb_build_array('other', 'k' || i)));
			END IF;
		END IF;
		event := event || jsonb_build_object('timestamp',
			to_char(timestamptz '2026-12-01 00:00:00+00' + i * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
		answer := coherence_rebase(coherence_seq_no() + 1, jsonb_build_array(event));
		IF answer->>'result' <> 'ok' THEN
			RAISE EXCEPTION 'populate: event % answered %', i, answer;
		END IF;
	END LOOP;
END
$$;

SELECT coherence_advance('projector', 300);
SELECT coherence_advance('mailer', 12);
RESET coherence.snapshot_interval;
