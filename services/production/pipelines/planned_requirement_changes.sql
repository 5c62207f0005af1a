-- planned_requirement_changes: each date of each requirements change (zero removes the date).
SELECT company, plant, material, date, quantity, source, event_position
FROM production_requirement_rows
