-- Checkpoints: a read model's position, advanced in the transaction that
-- writes the read model.
DROP EXTENSION coherence;
CREATE EXTENSION coherence;

SELECT coherence_rebase(1, (SELECT jsonb_agg(jsonb_build_object('source', 'test',
	'action', jsonb_build_object('reason', 'r', 'actor', '["user", "u"]'::jsonb,
	'aggregate', jsonb_build_array('book', i), 'patch', '{"assoc": {"x": 1}}'::jsonb)))
	FROM generate_series(1, 5) i))->>'result';

-- Unknown: 0, the position before the first event.
SELECT coherence_checkpoint('catalogue');

-- The read model and its checkpoint commit together...
CREATE TABLE catalogue (id text PRIMARY KEY);
BEGIN;
INSERT INTO catalogue SELECT aggregate_id FROM coherence_stream(1, 3);
SELECT coherence_advance('catalogue', 3);
COMMIT;
SELECT coherence_checkpoint('catalogue'), (SELECT count(*) FROM catalogue) AS rows;
-- ...or roll back together.
BEGIN;
INSERT INTO catalogue SELECT aggregate_id FROM coherence_stream(4, 5);
SELECT coherence_advance('catalogue', 5);
ROLLBACK;
SELECT coherence_checkpoint('catalogue'), (SELECT count(*) FROM catalogue) AS rows;

-- Staying put is allowed; updated_at moves with every advance.
SELECT updated_at AS before FROM coherence_checkpoints WHERE name = 'catalogue' \gset
SELECT pg_sleep(0.01);
SELECT coherence_advance('catalogue', 3);
SELECT coherence_checkpoint('catalogue'), updated_at > :'before' AS touched
  FROM coherence_checkpoints WHERE name = 'catalogue';
-- Checkpoints are independent.
SELECT coherence_advance('search', 5);
SELECT name, seq_no FROM coherence_checkpoints ORDER BY name;

-- Refused: moving backwards, past the head, bad names and seq_nos.
\set SHOW_CONTEXT never
SELECT coherence_advance('catalogue', 2);
SELECT coherence_advance('catalogue', 6);
SELECT coherence_advance('catalogue', -1);
SELECT coherence_advance('catalogue', NULL);
SELECT coherence_advance('', 1);
SELECT coherence_advance(NULL, 1);
SELECT coherence_checkpoint('catalogue');
DROP TABLE catalogue;
