-- The seed walkthrough from the contract, step by step, with its answers.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;
SET timezone = 'UTC';

\i sql/include/helpers.sql

-- 1. Alice adds two books: ok, seq_nos 1 and 2. The whole answer is shown
--    once, so the output shape is pinned down too.
SELECT jsonb_pretty(coherence_rebase(1, '[
  {"timestamp": "2026-11-22T10:00:00Z", "source": "bookstore",
   "action": {"reason": "create", "actor": ["user", "alice"], "aggregate": ["book", "Neuromancer"],
              "patch": {"assoc": {"author": "William Gibson", "genre": "SciFi"}}}},
  {"timestamp": "2026-11-22T10:00:01Z", "source": "bookstore",
   "action": {"reason": "create", "actor": ["user", "alice"], "aggregate": ["book", "Count Zero"],
              "patch": {"assoc": {"author": "William Gibson", "genre": "Cyberpunk"}}}}
]'));

-- 2. Bob, who saw nothing (base 1), adds two books, one of them Neuromancer:
--    conflict; Mona Lisa Overdrive would have been seq 3, ours is seq 4, theirs seq 1.
SELECT jsonb_pretty(coherence_rebase(1, '[
  {"timestamp": "2026-11-22T10:01:00Z", "source": "bookstore",
   "action": {"reason": "create", "actor": ["user", "bob"], "aggregate": ["book", "Mona Lisa Overdrive"],
              "patch": {"assoc": {"author": "William Gibson", "genre": "Cyberpunk"}}}},
  {"timestamp": "2026-11-22T10:01:00Z", "source": "bookstore",
   "action": {"reason": "create", "actor": ["user", "bob"], "aggregate": ["book", "Neuromancer"],
              "patch": {"assoc": {"author": "William Gibson", "genre": "Cyberpunk"}}}}
]'));
-- Nothing was written.
SELECT coherence_seq_no();

-- 3. Bob resolves the conflict with seq 1: ok, seq_nos 3 and 4.
SELECT pg_temp.summary(coherence_rebase(1, '[
  {"source": "bookstore",
   "action": {"reason": "create", "actor": ["user", "bob"], "aggregate": ["book", "Mona Lisa Overdrive"],
              "patch": {"assoc": {"author": "William Gibson", "genre": "Cyberpunk"}}}},
  {"source": "bookstore",
   "action": {"reason": "update", "actor": ["user", "bob"], "aggregate": ["book", "Neuromancer"],
              "patch": {"assoc": {"genre": "Cyberpunk"}}}}
]', resolved => '{1}'));

-- 4. Alice stores two receipts, each linked to its encryption key: ok, 5 and 6.
SELECT pg_temp.summary(coherence_rebase(2, '[
  {"source": "bookstore",
   "action": {"reason": "payment", "actor": ["user", "alice"], "aggregate": ["receipt", 1],
              "patch": {"assoc": {"no": "avd2dlg3g93fm1osu", "total": 100}}},
   "triggers": [["encryption-key", 1]]},
  {"source": "bookstore",
   "action": {"reason": "payment", "actor": ["user", "alice"], "aggregate": ["receipt", 2],
              "patch": {"assoc": {"no": "kepf62djsdk8fw21", "total": 200}}},
   "triggers": [["encryption-key", 2]]}
]'));

-- 5. The first key expires: ok, seq 7.
SELECT jsonb_pretty(coherence_rebase(6, '[
  {"timestamp": "2026-11-22T11:00:00+01:00", "source": "keystore",
   "effect": {"reason": "key-expired", "trigger": ["encryption-key", 1]}}
]'));

-- 6. Streaming from 6 replays receipt 1 (seq 5) before the window's receipt 2.
SELECT seq_no, aggregate_id, replayed FROM coherence_stream(6);

-- The stored events read back the same.
SELECT coherence_seq_no();
SELECT coherence_event(5) - 'timestamp';
SELECT coherence_event(7);
SELECT coherence_event(8) IS NULL AS absent, coherence_event(NULL) IS NULL AS null_in;
SELECT seq_no, source, reason, actor_id, aggregate_kind, aggregate_id, patch, triggers, replayed
  FROM coherence_stream();
