-- No window: all history before the as-of time.
SELECT count(*) AS n
FROM (
  SELECT person_id
  FROM event_Purchase
  WHERE event_time < TIMESTAMP '{as_of}'
  GROUP BY person_id
  HAVING sum(CAST(amount AS DECIMAL(38, 10))) > 500  -- exact, as the engine sums
) big
JOIN persons p ON p.person_id = big.person_id
