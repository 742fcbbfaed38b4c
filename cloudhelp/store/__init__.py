"""Storage: the database engine and sessions, the models, the migrations."""
