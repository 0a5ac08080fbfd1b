"""backtest/kernels"""
