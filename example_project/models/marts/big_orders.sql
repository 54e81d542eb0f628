/*
Paid orders whose gross amount reaches $big_order_amount ([tool.assetflow.vars]): changing
that value in pyproject.toml makes this asset stale ("configuration changed").
*/
-- assetflow: io=duckdb
select
    o.order_id,
    o.customer_id,
    c.name as customer,
    round(sum(o.gross_amount), 2) as amount
from order_lines o
join stg_customers c on c.customer_id = o.customer_id
where o.status = 'paid'
group by o.order_id, o.customer_id, c.name
having sum(o.gross_amount) >= $big_order_amount
order by amount desc, o.order_id
