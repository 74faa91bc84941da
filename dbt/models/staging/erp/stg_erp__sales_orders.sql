with

source as (

    select * from {{ source('erp', 'sales_orders') }}

),

renamed as (

    select
        order_id,
        customer_id,
        order_date,
        status as order_status,
        currency,
        company_id,
        cancelled_date
    from source

)

select * from renamed
