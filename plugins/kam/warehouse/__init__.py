"""The warehouse: which server (server), how to connect (connect), the schemas the
contract asks for (bootstrap), the BI role (roles) and write-audit-publish (publish)."""
