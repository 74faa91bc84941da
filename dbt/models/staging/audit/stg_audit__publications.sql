with

source as (

    select * from {{ source('audit', 'publications') }}

),

renamed as (

    select
        publication_id,
        as_of_date,
        run_id,
        dbt_invocation_id,
        published_at
    from source

)

select * from renamed
