-- Paid revenue and units per product category: a SQL mart over a Python asset (order_lines).
-- assetflow: tags=tier=gold
-- checks: not_null(category), unique(category), row_count(min=1)
select
    category,
    round(sum(gross_amount), 2) as revenue,
    sum(quantity)::bigint as units,
    count(distinct order_id) as orders
from order_lines
where status = 'paid'
group by category
order by revenue desc, category
