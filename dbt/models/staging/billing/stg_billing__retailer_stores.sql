with

source as (

    select * from {{ source('billing', 'retailer_stores') }}

),

renamed as (

    select
        retailer,
        store_id,
        region as store_region
    from source

)

select * from renamed
