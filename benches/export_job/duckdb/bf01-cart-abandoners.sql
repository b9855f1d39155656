-- did(AddToCart within 7d) and not did(Purchase within 7d)
SELECT i.installation_id AS "installationId", i.push_registration_id AS "pushRegistrationId",
       i.platform AS "platform", p.external_user_id AS "externalUserId"
FROM installations i
JOIN persons p ON p.person_id = i.person_id
WHERE i.push_registration_enabled AND i.state <> 'uninstalled'  -- the push channel
  AND EXISTS (SELECT 1 FROM event_AddToCart c
              WHERE c.person_id = i.person_id
                AND c.event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
                AND c.event_time < TIMESTAMP '{as_of}' AND c.{period} >= {period_from:7d})
  AND NOT EXISTS (SELECT 1 FROM event_Purchase b
                  WHERE b.person_id = i.person_id
                    AND b.event_time >= TIMESTAMP '{as_of}' - INTERVAL '7 days'
                    AND b.event_time < TIMESTAMP '{as_of}' AND b.{period} >= {period_from:7d})
