with

source as (

    select * from {{ source('billing', 'payments') }}

),

renamed as (

    select
        payment_id,
        customer_id,
        payment_date,
        amount as payment_amount,
        method as payment_method
    from source

)

select * from renamed
