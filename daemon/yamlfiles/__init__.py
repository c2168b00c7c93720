"""Admin-edited YAML files: loading with line numbers, and hot reload of the version in force."""
