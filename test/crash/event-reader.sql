-- One poll of an event reader (psql, variable next = the first seq_no not
-- yet read): print coherence_event of every seq_no up to coherence_seq_no(),
-- or "MISSING n" when an event below the reported head is absent.
SELECT coherence_seq_no() AS head \gset
SELECT coalesce(string_agg(coalesce(e::text, 'MISSING ' || n), E'\n' ORDER BY n), '') AS events,
       greatest(:head + 1, :next) AS next
  FROM generate_series(:next, :head) n, coherence_event(n) e \gset
\echo :events
SELECT pg_sleep(0.01) AS slept \gset
