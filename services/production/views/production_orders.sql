-- Production orders as they stand: status, planned and received quantity, standard and actual
-- cost, what is left in work in process and the variance settled.
CREATE VIEW production_orders AS
SELECT h.company, h.production_order, h.plant, h.material, h.quantity AS planned_quantity,
       h.start_date, h.finish_date, h.planned_order, h.receipt_valuation, h.currency,
       s.status,
       COALESCE(e.received_quantity, 0) AS received_quantity,
       h.standard_cost,
       COALESCE(e.actual_cost, 0) AS actual_cost,
       COALESCE(e.received_value, 0) AS received_value,
       COALESCE(e.work_in_process, 0) AS work_in_process,
       e.variance
FROM production_order_headers h
JOIN (
    SELECT company, production_order, status
    FROM (
        SELECT company, production_order, status,
               ROW_NUMBER() OVER (PARTITION BY company, production_order
                                  ORDER BY event_position DESC) AS newest
        FROM production_order_events
        WHERE status IS NOT NULL
    ) ranked
    WHERE newest = 1
) s ON s.company = h.company AND s.production_order = h.production_order
LEFT JOIN (
    SELECT company, production_order,
           SUM(CASE WHEN event = 'goods_receipt' THEN quantity ELSE 0 END) AS received_quantity,
           SUM(CASE WHEN event IN ('component_issue', 'backflush', 'confirmation')
                    THEN wip_amount ELSE 0 END) AS actual_cost,
           -SUM(CASE WHEN event = 'goods_receipt' THEN wip_amount ELSE 0 END) AS received_value,
           SUM(wip_amount) AS work_in_process,
           -SUM(CASE WHEN event = 'settled' THEN wip_amount END) AS variance
    FROM production_order_events
    GROUP BY company, production_order
) e ON e.company = h.company AND e.production_order = h.production_order
