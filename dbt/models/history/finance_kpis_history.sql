-- Every run appends its day's headline figures; `publish` prunes the runs of that day that
-- were not published. Read it through marts.finance_kpis_daily.

select
    *,
    '{{ invocation_id }}' as dbt_invocation_id
from {{ ref('finance_kpis') }}
