"""The provincial emission-factor database (省级碳足迹因子数据库)."""
