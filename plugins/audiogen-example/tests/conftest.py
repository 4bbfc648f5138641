import os

# audiogen's test kit: fixtures audiogen_cli, audiogen_corpus, audiogen_autoencoder, audiogen_latents.
pytest_plugins = ["audiogen.testing"]

# Only this plugin loads in these tests: other installed plugins cannot break them.
os.environ["AUDIOGEN_PLUGINS"] = "example"
