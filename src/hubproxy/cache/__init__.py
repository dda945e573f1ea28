"""The caching proxy: upstream client, revision resolution and the chunked blob cache."""
