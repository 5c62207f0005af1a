-- Planned independent requirements as they are now: each date's last quantity (none when it
-- was set to zero), with the source that set it (manual, or a released forecast).
CREATE VIEW planned_requirements AS
SELECT company, plant, material, date, quantity, source
FROM (
    SELECT *, row_number() OVER (PARTITION BY company, plant, material, date
                                 ORDER BY event_position DESC) AS newest
    FROM planned_requirement_changes
) ranked
WHERE newest = 1 AND quantity <> 0
