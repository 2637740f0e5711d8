"""Database sources: PostgreSQL/PostGIS and MySQL/MariaDB."""
