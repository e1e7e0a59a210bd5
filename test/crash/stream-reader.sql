-- One poll of a stream reader (psql, variable next = the first seq_no not
-- yet read): print every row coherence_stream returns.
SELECT coalesce(max(seq_no) FILTER (WHERE NOT replayed) + 1, :next) AS next,
       coalesce(string_agg(to_jsonb(s)::text, E'\n' ORDER BY seq_no), '') AS rows
  FROM coherence_stream(:next) s \gset
\echo :rows
SELECT pg_sleep(0.01) AS slept \gset
