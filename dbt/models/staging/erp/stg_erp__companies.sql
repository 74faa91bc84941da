-- The companies whose books are loaded; without any, the one company of the site's settings.

with

source as (

    select * from {{ source('erp', 'companies') }}

),

companies as (

    select
        company_id,
        coalesce(company_name, company_id) as company_name,
        upper(btrim(currency)) as company_currency
    from source
    union all
    select
        {{ default_company_id() }},
        {{ default_company_id() }},
        upper({{ default_company_currency() }})
    where not exists (select 1 from source)

),

final as (

    select
        *,
        -- rows that name no company belong to KAM_COMPANY_ID if it is loaded, else to the first
        company_id = (
            select coalesce(max(company_id) filter (where company_id = {{ default_company_id() }}), min(company_id))
            from companies
        ) as is_default_company
    from companies

)

select * from final
