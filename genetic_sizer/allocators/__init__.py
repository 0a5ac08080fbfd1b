"""allocators"""
