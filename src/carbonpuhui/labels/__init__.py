"""Carbon labels: category benchmarks and grades, certification, labels, listings (碳足跡標識認證, 分級管理)."""
