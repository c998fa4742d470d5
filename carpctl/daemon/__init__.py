"""The supervisor daemon: configuration, logging, the asyncio driver."""
