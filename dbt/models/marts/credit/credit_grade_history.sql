{{ config(materialized='view') }}

{{ published_history(ref('credit_grades_history')) }}
