//! Config: the settings file (TOML) and its defaults, validated with errors that name
//! the key and line. Produces the settings each step takes.
