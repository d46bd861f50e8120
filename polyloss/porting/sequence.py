"""placeholder"""
CONCEPTS = []
