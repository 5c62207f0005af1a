-- Capacity load per work centre and week: the hours of the current plan's planned orders
-- (their routing, in the week they are released) and of open production orders (what their
-- operations have not confirmed yet, in the week they start), against what the work centre
-- can do in a week of five working days.
CREATE VIEW capacity_load AS
WITH planned AS (
    SELECT p.company, p.plant, r.work_center,
           CAST(date_trunc('week', CAST(p.release_date AS TIMESTAMP)) AS DATE) AS week_start,
           r.setup_hours + r.run_hours_per_unit * p.quantity AS planned_order_hours,
           CAST(0 AS DECIMAL(38, 4)) AS production_order_hours
    FROM planned_orders p
    JOIN routing_operations r
      ON r.company = p.company AND r.plant = p.plant AND r.material = p.material
    WHERE p.proposal_type = 'planned_order'
),
confirmed AS (
    SELECT company, production_order, operation,
           sum(setup_hours + run_hours) AS hours, bool_or(final_confirmation) AS final
    FROM production_confirmations
    GROUP BY company, production_order, operation
),
ordered AS (
    SELECT o.company, h.plant, o.work_center,
           CAST(date_trunc('week', CAST(o.start_date AS TIMESTAMP)) AS DATE) AS week_start,
           CAST(0 AS DECIMAL(38, 4)) AS planned_order_hours,
           CASE WHEN o.planned_hours > COALESCE(c.hours, 0)
                THEN o.planned_hours - COALESCE(c.hours, 0) ELSE 0 END AS production_order_hours
    FROM production_order_operations o
    JOIN production_orders h
      ON h.company = o.company AND h.production_order = o.production_order
    LEFT JOIN confirmed c
      ON c.company = o.company AND c.production_order = o.production_order
     AND c.operation = o.operation
    WHERE h.status IN ('created', 'released') AND NOT COALESCE(c.final, false)
),
load AS (
    SELECT company, plant, work_center, week_start,
           sum(planned_order_hours) AS planned_order_hours,
           sum(production_order_hours) AS production_order_hours
    FROM (SELECT * FROM planned UNION ALL SELECT * FROM ordered) hours
    GROUP BY company, plant, work_center, week_start
)
SELECT l.company, l.plant, l.work_center, l.week_start, l.planned_order_hours,
       l.production_order_hours, l.planned_order_hours + l.production_order_hours AS load_hours,
       w.capacity_hours_per_day * 5 AS available_hours,
       CASE WHEN w.capacity_hours_per_day > 0
            THEN round(100 * (l.planned_order_hours + l.production_order_hours)
                       / (w.capacity_hours_per_day * 5), 1) END AS load_percent
FROM load l
LEFT JOIN work_centers w
  ON w.company = l.company AND w.plant = l.plant AND w.work_center = l.work_center
