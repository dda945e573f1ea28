"""The Hub HTTP API: parse, call a `RepoStore`, respond. No caching or storage logic here."""
