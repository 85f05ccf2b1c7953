"""Product carbon footprints (GB/T 24067-2024 / ISO 14067): products, inventories, results."""
