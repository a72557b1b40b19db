// 使用当前位置: fills the form's point on the map from the phone's location, when the citizen
// asks. The form works without it; nothing is sent anywhere but with the form.
(function () {
  var button = document.getElementById("locate");
  if (!button || !navigator.geolocation) return;
  var lat = document.getElementById("latitude"), lng = document.getElementById("longitude");
  var said = document.getElementById("located");
  button.hidden = false;
  button.addEventListener("click", function () {
    said.textContent = "正在定位…";
    navigator.geolocation.getCurrentPosition(function (p) {
      lat.value = p.coords.latitude.toFixed(6);
      lng.value = p.coords.longitude.toFixed(6);
      said.textContent = "已定位：" + lat.value + "，" + lng.value;
    }, function () {
      said.textContent = "无法获取位置，请在详细地址中写明地点";
    }, { enableHighAccuracy: true, timeout: 15000 });
  });
})();
