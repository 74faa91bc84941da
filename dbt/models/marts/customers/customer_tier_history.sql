{{ config(materialized='view') }}

{{ published_history(ref('customer_tiers_history')) }}
