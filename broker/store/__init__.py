"""Redis storage: key names, Lua scripts, the pooled client and the store itself."""
