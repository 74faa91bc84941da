-- The account each customer counts under for tiers: its group (parent_customer_id) when
-- the policy counts customer groups as one account, else the customer itself.

with

customers as (

    select * from {{ ref('stg_erp__customers') }}

),

final as (

    select
        customers.customer_id,
        case
            when {{ policy('count_customer_groups_as_one_account') }} = 1 and parents.customer_id is not null
                then parents.customer_id
            else customers.customer_id
        end as account_id
    from customers
    left join customers as parents on customers.parent_customer_id = parents.customer_id

)

select * from final
