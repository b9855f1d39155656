-- sum(Purchase.amount within 365d) > 300
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND i.person_id IN (
    SELECT person_id FROM event_Purchase
    WHERE event_time >= TIMESTAMP '{as_of}' - INTERVAL '365 days'
      AND event_time < TIMESTAMP '{as_of}' AND {period} >= {period_from:365d}
    GROUP BY person_id
    HAVING sum(CAST(amount AS DECIMAL(38, 10))) > 300)
