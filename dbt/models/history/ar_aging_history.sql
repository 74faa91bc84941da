-- Every run appends its day's customer aging; `publish` prunes the runs of that day that
-- were not published. Read it through marts.ar_aging_daily.

select
    *,
    '{{ invocation_id }}' as dbt_invocation_id
from {{ ref('ar_aging') }}
