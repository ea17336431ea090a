"""(placeholder until its engineer lands it)"""
