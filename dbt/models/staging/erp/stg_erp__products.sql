with

source as (

    select * from {{ source('erp', 'products') }}

),

renamed as (

    select
        product_id,
        product_name,
        category as product_category,
        unit_cost,
        list_price
    from source

)

select * from renamed
