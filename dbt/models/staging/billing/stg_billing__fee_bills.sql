with

source as (

    select * from {{ source('billing', 'fee_bills') }}

),

renamed as (

    select
        fee_bill_id,
        distributor_id,
        retailer,
        store_id,
        sku_count,
        fee_type,
        billed_amount,
        bill_date,
        period_month,
        reference as fee_bill_reference
    from source

)

select * from renamed
