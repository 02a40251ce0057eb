"""MLflow's prompt registry, which the client keeps in registered models, works unmodified."""

import mlflow


def test_prompts_register_version_alias_load_and_search(portal):
    assert mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!").version == 1
    assert mlflow.genai.register_prompt(name="greeting", template="Hi {{name}}!").version == 2
    assert mlflow.genai.load_prompt("prompts:/greeting/1").format(name="Ada") == "Hello Ada!"
    mlflow.genai.set_prompt_alias("greeting", alias="prod", version=2)
    assert mlflow.genai.load_prompt("prompts:/greeting@prod").format(name="Ada") == "Hi Ada!"
    assert [p.name for p in mlflow.genai.search_prompts()] == ["greeting"]


def test_prompts_are_left_out_of_model_searches(portal):
    mlflow.genai.register_prompt(name="greeting", template="Hello {{name}}!")
    portal.client().create_registered_model("churn")
    assert [m.name for m in portal.client().search_registered_models()] == ["churn"]
