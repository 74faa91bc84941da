with

source as (

    select * from {{ source('erp', 'customers') }}

),

renamed as (

    select
        customer_id,
        customer_name,
        customer_type,
        parent_customer_id,
        region,
        territory,
        channel,
        account_manager,
        account_manager_email,
        payment_terms_days,
        influence_rating,
        created_date,
        is_active,
        contact_name,
        contact_phone,
        contact_email,
        language,
        last_credit_review_date
    from source

)

select * from renamed
