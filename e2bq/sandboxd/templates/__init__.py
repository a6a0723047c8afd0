"""Templates: root filesystems built from a TOML file (Debian's archive, PyPI, npm), shared read-only.

``definition`` parses and validates the file, ``build`` runs the steps, ``store`` keeps the builds
by content hash under the templates folder, ``cli`` is ``e2bq template build|list|delete``; the
shipped definitions are in ``defs/``. ``sdksteps`` turns the E2B SDK's ``Template()`` steps into a
definition and ``sdkbuilds`` runs the builds E2B's template API asks for (``http.templatebuilds``).
"""
