-- Each category's share of the paid revenue: SQL reading SQL.
with total as (select sum(revenue) as revenue from category_revenue)
select
    c.category,
    c.revenue,
    round(100 * c.revenue / total.revenue, 1) as share_pct
from category_revenue c cross join total
order by c.revenue desc, c.category
