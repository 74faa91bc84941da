with

source as (

    select * from {{ source('erp', 'shipments') }}

),

renamed as (

    select
        shipment_id,
        order_id,
        customer_id,
        ship_date,
        ship_to_region,
        company_id,
        -- the company-currency amount the source booked, else the amount (shipments are valued
        -- at order prices, which are in the company's currency at every site so far)
        coalesce(company_amount, amount) as shipment_amount
    from source

)

select * from renamed
